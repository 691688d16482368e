"""The overview, the console's home page: whether the integration is healthy, per connection
and table mapping, and what came and went over the last month with the changes that may
explain it. It only reads: the stored figures of `sync` and `errors` and the audit log, never a
count over the entries. It sits above every other app, and nothing imports it."""
