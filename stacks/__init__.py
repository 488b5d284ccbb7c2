"""The stacks layer: the only code that reads Pulumi config."""
