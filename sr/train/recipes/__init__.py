"""The one-step distillation recipes, one file each: sinsr (docs/methods.md §2), tadsr (§3), colearn (§5)."""
