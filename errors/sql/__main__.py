"""`python -m errors.sql`: each file's digest, as a migration that installs it names it."""

from . import digest, sql_names

for name in sql_names():
    print(f'Install("{name}", "{digest(name)}")')
