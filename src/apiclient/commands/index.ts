// The subcommands, in help order; adding one is a module plus a line here.
import type { Subcommand } from "../context.js";
import { apply } from "./apply.js";
import { get } from "./get.js";
import { raw } from "./raw.js";
import { set } from "./set.js";
import { rebootCmd, update } from "./update.js";

export const SUBCOMMANDS: readonly Subcommand[] = [raw, get, set, apply, update, rebootCmd];

