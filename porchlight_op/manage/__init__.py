"""The OP's own management area, a relying party of the OP itself."""
