-- repository_base_role is the repository role every member of the
-- organization holds on each of its repositories (the BSR's organization
-- setting of that name), and the role an override-less repository group
-- mapping grants. '' means none: organizations that existed before this
-- column keep exactly the access they had.
ALTER TABLE organizations ADD COLUMN repository_base_role TEXT NOT NULL DEFAULT ''
    CHECK (repository_base_role IN ('', 'READ', 'LIMITED_WRITE', 'WRITE', 'ADMIN'));
