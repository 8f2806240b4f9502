"""A tiny unCLIP trained from scratch on open-licensed emoji (issue #5): dataset, models, training, evaluation.

    python -m unclip_toolchain.emoji all --budget-minutes 180
"""
