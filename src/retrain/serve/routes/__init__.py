"""The service's endpoints, one router per concern: `health` (/health, /ready), `scoring`
(/predict, /predict/batch), `docs` (/docs, /openapi.json and Swagger UI's own assets)."""
