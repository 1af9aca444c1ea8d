"""Everything that speaks Contentful: settings, one HTTP client, sync and its store, the Preview
API, the Management API (schema push, seeding), webhook signatures and RichText."""
