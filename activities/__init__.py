"""Side effects of a rollout: ASM calls and loading target pages, as activity classes."""
