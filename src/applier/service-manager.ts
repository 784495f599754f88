// The one seam between the applier and the init system. On the image, systemctl; in workstation
// mode, a recorder (the restarts are logged to a file so tests and users can see them).
import { execFile } from "node:child_process";
import { appendFileSync, mkdirSync } from "node:fs";
import { dirname } from "node:path";

export interface ServiceManager {
  /** Restart units that are running; units not yet started are left alone (safe at boot). */
  tryRestart(units: string[]): Promise<void>;
  /** Reboot the host (systemd honours inhibitors). */
  reboot(): Promise<void>;
}

export class SystemctlServiceManager implements ServiceManager {
  constructor(private readonly systemctl = "/usr/bin/systemctl") {}
  tryRestart(units: string[]): Promise<void> {
    if (units.length === 0) return Promise.resolve();
    // --no-block: the API must not wait on a unit's start-up; failures show in the unit's status.
    return new Promise((resolve, reject) =>
      execFile(this.systemctl, ["try-restart", "--no-block", ...units], (err, _out, stderr) =>
        err ? reject(new Error(`systemctl try-restart ${units.join(" ")} failed: ${stderr.trim() || err.message}`)) : resolve(),
      ),
    );
  }
  reboot(): Promise<void> {
    return new Promise((resolve, reject) =>
      // Straight to systemd (its private socket), not through logind over D-Bus, which the
      // image does not need to run for this.
      execFile(this.systemctl, ["--no-block", "--job-mode=replace-irreversibly", "start", "reboot.target"], (err, _out, stderr) =>
        err ? reject(new Error(`systemctl reboot failed: ${stderr.trim() || err.message}`)) : resolve(),
      ),
    );
  }
}

export class RecordingServiceManager implements ServiceManager {
  readonly restarted: string[][] = [];
  constructor(private readonly logPath?: string) {
    if (logPath) mkdirSync(dirname(logPath), { recursive: true });
  }
  tryRestart(units: string[]): Promise<void> {
    if (units.length === 0) return Promise.resolve();
    this.restarted.push(units);
    if (this.logPath) appendFileSync(this.logPath, `${new Date().toISOString()} try-restart ${units.join(" ")}\n`);
    return Promise.resolve();
  }
  readonly reboots: string[] = [];
  reboot(): Promise<void> {
    this.reboots.push(new Date().toISOString());
    if (this.logPath) appendFileSync(this.logPath, `${new Date().toISOString()} reboot\n`);
    return Promise.resolve();
  }
}
