# dry-run.sh puts this folder on PYTHONPATH: the device machine has none of these packages (KINDS.md), so any
# real import of them fails loudly here too (importlib.util.find_spec still finds them, as diffusers probes).
import importlib.abc, importlib.machinery, sys
NAMES = ("jsonschema", "ftfy", "importlib_metadata")
class _Loader(importlib.abc.Loader):
    def create_module(self, spec): return None
    def exec_module(self, module): raise ImportError(f"dry run: {module.__name__} is not on the device machine")
class _Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in NAMES:
            return importlib.machinery.ModuleSpec(name, _Loader())
        return None
sys.meta_path.insert(0, _Block())
