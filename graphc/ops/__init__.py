"""Op families. Each module defines its ops (type inference, reference ``perform``,
gradient) and the user-facing functions that build them."""
