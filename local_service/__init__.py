"""The whole service on one machine: moto plays AWS, worker instances are local processes."""
