"""Analysis: one engine, a pure function of the event stream, with its rules, config and fixes."""
