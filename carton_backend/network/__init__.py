"""The build half on the network: HTTP policy, downloads kept by content, the public index,
and wheels read by byte ranges."""
