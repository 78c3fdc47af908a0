"""The command line and the loading of a server from a target."""
