"""meshfleet: roll out Huawei Cloud ASM service meshes across a fleet, durably, on Temporal."""

__version__ = "0.3.0.dev0"
