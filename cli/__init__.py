"""The command line for staff and operators, mounted by starter.py: the case actions and operations at the top
level (case.py), bank statements and queue, campaigns, agencies, staff and API-client accounts as sub-commands;
common.py holds the shared identity, audit and error handling."""
