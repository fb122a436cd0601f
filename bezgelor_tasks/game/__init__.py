"""The running game world, reached through the release's remote console (`bin/<release> rpc`)."""
