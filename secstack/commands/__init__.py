"""Subcommands beyond `preview`: every module here registers its commands with `secstack.cli.command`."""
import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
