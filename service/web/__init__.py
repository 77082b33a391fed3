"""The web layer: the JSON API, the pages, HTTP errors and headers. Only this layer knows HTTP."""
