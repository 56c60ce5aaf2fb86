"""What runs inside the debug container: recipes (argv lists, required binaries), no parsing."""
