"""The interceptor chain: what every message meets on its way in and out (see DESIGN section 5)."""
