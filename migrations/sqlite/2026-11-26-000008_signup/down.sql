DROP TABLE invitations;
DROP TABLE signups;
