"""The Huawei Cloud ASM mesh API as a typed async library (models here; client in ``asm.client``).

The package root stays light on purpose: workflow code imports ``asm.models`` through the Temporal
sandbox, so nothing here may pull in aiohttp.
"""
