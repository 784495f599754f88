// Two self-signed test certificates (P-256, CN=caisson-test-a and -b, valid for 100 years), made
// once with `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 36500`:
// certificate settings are parsed as X.509, so tests need real ones. No private key is kept.
export const CERT_A = `-----BEGIN CERTIFICATE-----
MIIBijCCAS+gAwIBAgIUXQNobKlPwat4wyE/n9DQoSOCuEgwCgYIKoZIzj0EAwIw
GTEXMBUGA1UEAwwOY2Fpc3Nvbi10ZXN0LWEwIBcNMjYxMTI5MTcwMDM1WhgPMjEy
NjExMDUxNzAwMzVaMBkxFzAVBgNVBAMMDmNhaXNzb24tdGVzdC1hMFkwEwYHKoZI
zj0CAQYIKoZIzj0DAQcDQgAEr++fiBRS0p1K864FeexU/+ZwAW4QaEFKXG7lpZ/S
6izIYa+wT1O6O1xmsfuMr/QsRVyrpjvHxpbzx+Lxo9hcOqNTMFEwHQYDVR0OBBYE
FGz+Lr/NrvZnF85/+sDMFeiyj/R2MB8GA1UdIwQYMBaAFGz+Lr/NrvZnF85/+sDM
Feiyj/R2MA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSQAwRgIhAONZynSf
+tbO2sGYDkZBkb2/w4i5SmoqQVFKV1qoZkYCAiEAzoS9LbK+ri2xGaKNrB+XesTW
wZWFjUhlbOq7Mi1a7tI=
-----END CERTIFICATE-----
`;
export const CERT_B = `-----BEGIN CERTIFICATE-----
MIIBiDCCAS+gAwIBAgIUCcXipXI5XA+/5PAIvkwXLdOCfH4wCgYIKoZIzj0EAwIw
GTEXMBUGA1UEAwwOY2Fpc3Nvbi10ZXN0LWIwIBcNMjYxMTI5MTcwMDM1WhgPMjEy
NjExMDUxNzAwMzVaMBkxFzAVBgNVBAMMDmNhaXNzb24tdGVzdC1iMFkwEwYHKoZI
zj0CAQYIKoZIzj0DAQcDQgAEDZnOJ0H92N4OEWsIomBRD2h+VNqd0W+UiuXa2Hbh
42hhj8863+EmHXEVV1lUbvtzaN86oPBRBt3ad6tk3kAZEaNTMFEwHQYDVR0OBBYE
FMVurGzB1z1RTwEVUy27ZeQdrtphMB8GA1UdIwQYMBaAFMVurGzB1z1RTwEVUy27
ZeQdrtphMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDRwAwRAIgOKp9cTyz
ZABxnoJtgXWaXbBuGaeWTw1Va6bgbxYmAw4CIFye35iFGA7zOgcAtFhvRRQQup/P
zjukpUlYKO2qmafa
-----END CERTIFICATE-----
`;
