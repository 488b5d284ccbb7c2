"""secstack components: what is deployed. Each takes typed args and never reads config."""
