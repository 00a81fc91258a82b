DROP TABLE device_challenges;
DROP TABLE device_enrollments;
DROP TABLE devices;
DROP TABLE qr_logins;
