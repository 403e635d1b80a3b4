"""Who may do what (issue #12): principals, accounts, sessions, the one route-policy table."""
