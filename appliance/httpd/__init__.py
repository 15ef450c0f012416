"""What the box's pages and the relay share to serve HTTP: the cheroot server in a thread, the one
security-header policy, and a dispatcher by path prefix. Imports nothing of the box."""
