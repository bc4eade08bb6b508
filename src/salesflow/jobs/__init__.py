"""The job runtime every background task of the service runs on (Taskiq): the broker, thin tasks, the
worker entry point and the periodic sweep. Job records live in the state database, never only in Redis."""
