"""`pgenrm compare`: the CLI over `service.comparison`, in process or through a server."""
