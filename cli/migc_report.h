/* migc_report.h: `migc report DIR` (see migc_report.c). */
#ifndef MIGC_CLI_REPORT_H
#define MIGC_CLI_REPORT_H

/* Writes DIR/report.html and prints its path; 0, or 1 with a message on stderr. For a
 * directory of migc train --seeds (DIR/seeds.csv), the page is the seeds' table, and
 * each seed's own report is written (and its path printed) first. */
int report_run(const char *dir);

#endif
