"""People's rights (PIPL 45/47) and the operators' tools: deletion with re-authentication and a
cooling-off period, the personal-data document, disable/enable, find/show, the audit trail."""
