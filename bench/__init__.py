"""Benchmarks of meshfleet beside plain asyncio and a minimal Temporal workflow."""
