"""The CrossGuard pack's verdicts in `secstack preview`."""
from secstack import crossguard
from secstack.verdicts import checker


@checker
def crossguard_pack(preview):
    return crossguard.evaluate(preview)
