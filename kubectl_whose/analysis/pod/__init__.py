"""The pod's state (interfaces, routes, sockets) and the "whose" joins over a capture's streams."""
