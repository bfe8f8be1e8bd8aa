"""The payments service's code: payment decisions, the gateway interface and the simulated gateway."""
