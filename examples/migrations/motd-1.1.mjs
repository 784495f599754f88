// Caisson 1.1.0 migration: REPLACES a value (Bottlerocket's ReplaceStringMigration, as used to bump
// host-container image tags).
// Hosts still showing the stock message of the day "Welcome to Caisson!" get 1.1.0's
// "Welcome to Caisson 1.1!" (observable: /etc/motd); a message the user wrote is left alone.
// Backward puts the stock 1.0 message back, again only where the 1.1 one is still in place.
export const description = "replace the stock motd with 1.1.0's";
const OLD = "Welcome to Caisson!";
const NEW = "Welcome to Caisson 1.1!";
export const forward = (settings, helpers) => helpers.replaceString("settings.motd", OLD, NEW).forward(settings);
export const backward = (settings, helpers) => helpers.replaceString("settings.motd", OLD, NEW).backward(settings);
