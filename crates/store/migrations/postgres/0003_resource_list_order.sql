-- Lists of a resource group's or a subscription's resources are paged in key order; these
-- indexes give that order directly, so a page costs the same at any table size.
CREATE INDEX resources_by_group_key ON resources (subscription_id, resource_group_key, key);
CREATE INDEX resources_by_subscription_key ON resources (subscription_id, key);
