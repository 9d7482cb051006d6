"""The ``.spk`` container: a versioned, checksummed file of named, lazily read sections."""
