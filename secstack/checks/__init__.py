"""Preview checkers: every module here registers functions with `secstack.verdicts.checker`."""
import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
