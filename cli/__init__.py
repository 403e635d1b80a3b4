"""The command line for staff and operators, mounted as sub-commands by starter.py: bank statements and queue,
campaigns, agencies, staff accounts; common.py holds the shared identity, audit and error handling."""
