"""The HTTP layer: routes, handlers, middlewares and page rendering."""
