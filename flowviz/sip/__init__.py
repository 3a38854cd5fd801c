"""SIP correlation: transactions -> hops -> dialogs and legs -> call groups -> call summaries.

Pure functions on polars frames (sip_messages in, frames or summary dicts out); no I/O.
Rules and their RFC sections: docs/correlation.md.
"""
