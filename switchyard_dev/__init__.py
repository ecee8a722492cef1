"""Development helpers shared by the tests and the benchmarks, never loaded by the site
(not under apps/, not copied into the image): throwaway PostgreSQL and RabbitMQ servers
(`services`). Both tests/ and bench/ import this package; neither imports the other."""
