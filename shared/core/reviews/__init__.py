"""Access reviews from the RBAC guide: local-auth readiness, least-privilege review and pre-upgrade audit
(docs/reviews.md). Pure: plain data in (`model.AccountFacts`), verdicts and findings out.
"""
