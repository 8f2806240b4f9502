"""Attribution and licence texts for the emoji pack: every artwork and metadata source, and what was changed."""

from __future__ import annotations

from pathlib import Path

LICENSE_ID = "CC-BY-4.0 AND Apache-2.0 AND MIT"
LICENSE_DIR = Path(__file__).with_name("licenses")

ATTRIBUTION_SHORT = (
    "Trained in unCLIP Studio on: Noto Emoji by Google (Apache-2.0); Twemoji by Twitter, Inc and other contributors "
    "(jdecked/twemoji), CC-BY 4.0; Fluent Emoji Flat, Copyright (c) Microsoft Corporation (MIT). Captions: CLDR "
    "annotations via emojibase-data (MIT, Miles Johnson). Images resized/rasterised to 64x64 and composited onto "
    "coloured backgrounds. See ATTRIBUTION.md."
)

ATTRIBUTION_MD = """# Attribution: data this model was trained on

The weights in this pack were trained from scratch (no pretrained weights) on emoji artwork from the sources below.
The images themselves are not in the pack, but the weights are derived from them, so these notices travel with it.
Apple and Facebook emoji artwork was **not** used.

## Artwork

* **Noto Emoji** (Google), from the npm package `emoji-datasource-google@16.0.0` (Noto Emoji v2.048 PNGs, 64x64).
  Licensed under the Apache License, Version 2.0 (LICENSE-Apache-2.0.txt), https://github.com/googlefonts/noto-emoji.
  Modifications: alpha-composited onto solid background colours, optionally scaled down and moved, downsampled to
  32x32 for the decoder.
* **Twemoji** graphics by Twitter, Inc and other contributors (jdecked/twemoji v16.0.1), from the npm package
  `emoji-datasource-twitter@16.0.0`. Licensed under CC-BY 4.0, https://creativecommons.org/licenses/by/4.0/
  (LICENSE-CC-BY-4.0.txt). Modifications: as for Noto (64x64 PNGs composited onto backgrounds, scaled, downsampled).
* **Fluent Emoji Flat**, Copyright (c) Microsoft Corporation, https://github.com/microsoft/fluentui-emoji, from the
  npm package `@iconify-json/fluent-emoji-flat@1.2.6` (Iconify packaging of the SVGs). MIT licence
  (LICENSE-MIT.txt). Modifications: rasterised to 64x64 with @resvg/resvg-js, then as above.

## Captions and metadata

* **emojibase-data@17.0.0**, Copyright (c) 2017-2019 Miles Johnson, MIT licence: English labels and tags, which are
  Unicode CLDR 48 annotations (Unicode, Inc., Unicode License v3, https://www.unicode.org/license.txt).
* **emoji-datasource@16.0.0** (`emoji.json` of the -google/-twitter packages), Copyright (c) 2013 Cal Henderson, MIT
  licence: image file names.

## Tokenizer

tokenizer.json is OpenAI CLIP's BPE vocabulary (MIT), see NOTICE.md.
"""


def mit_text(holder: str) -> str:
    return f"MIT License\n\nCopyright (c) {holder}\n\n" + (LICENSE_DIR / "MIT-body.txt").read_text(encoding="utf-8")


def write_attribution(pack: Path) -> None:
    pack = Path(pack)
    (pack / "ATTRIBUTION.md").write_text(ATTRIBUTION_MD, encoding="utf-8")
    (pack / "LICENSE-Apache-2.0.txt").write_text((LICENSE_DIR / "Apache-2.0.txt").read_text(encoding="utf-8"),
                                                 encoding="utf-8")
    (pack / "LICENSE-CC-BY-4.0.txt").write_text((LICENSE_DIR / "CC-BY-4.0.txt").read_text(encoding="utf-8"),
                                                encoding="utf-8")
    mit = "\n\n---\n\n".join(mit_text(h) for h in (
        "Microsoft Corporation (Fluent Emoji)", "2017-2019 Miles Johnson (emojibase-data)",
        "2013 Cal Henderson (emoji-datasource)"))
    (pack / "LICENSE-MIT.txt").write_text(mit, encoding="utf-8")
