// Submits the OAuth 2.0 Form Post response. Served as a file because the CSP forbids inline script.
document.getElementById('form-post').submit();
