"""What a service opens once (`pgdecor._service`): `Database`, units of work and their retries."""
