//! HAProxy's `/haproxy?stats;csv`, read by header name (so any HAProxy from
//! 1.8 to 3.x works: zdd.py mapped columns positionally into a namedtuple
//! and crashed on HAProxy ≥ 2.4's CSV), and the per-task questions zdd asks
//! of it: is this task's server UP, in maintenance, drained?

use serde_json::Value;

/// One server (or frontend/backend) row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Proxy (backend) name.
    pub pxname: String,
    /// Server name, or `FRONTEND` / `BACKEND`.
    pub svname: String,
    /// `UP`, `DOWN`, `MAINT`, `UP 1/3`, `no check`, ...
    pub status: String,
    /// Queued requests.
    pub qcur: u64,
    /// Current sessions.
    pub scur: u64,
}

impl Row {
    /// In maintenance (marathon-lb writes draining servers `disabled`).
    pub fn is_maint(&self) -> bool {
        self.status.starts_with("MAINT")
    }

    /// Taking traffic: `UP` (also `UP 1/3`, going down) or `no check`.
    pub fn is_up(&self) -> bool {
        self.status == "UP" || self.status.starts_with("UP ") || self.status == "no check"
    }

    /// In maintenance with no session and nothing queued.
    pub fn is_drained(&self) -> bool {
        self.is_maint() && self.qcur == 0 && self.scur == 0
    }
}

/// Split one CSV line; double quotes protect commas (HAProxy quotes free
/// text such as check descriptions).
fn split(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                fields.last_mut().expect("one field").push('"');
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(String::new()),
            c => fields.last_mut().expect("one field").push(c),
        }
    }
    fields
}

/// Parse the CSV. Columns are found by the names in the `# pxname,...`
/// header; extra or missing trailing columns are tolerated. An error names
/// what is missing.
pub fn parse(csv: &str) -> Result<Vec<Row>, String> {
    let mut lines = csv.lines().filter(|l| !l.trim().is_empty());
    let header = lines.next().ok_or("empty stats CSV")?;
    let header = header
        .strip_prefix('#')
        .ok_or_else(|| format!("not a HAProxy stats CSV (first line {header:?})"))?;
    let names: Vec<String> = split(header.trim())
        .into_iter()
        .map(|n| n.trim().to_owned())
        .collect();
    let col = |name: &str| {
        names
            .iter()
            .position(|n| n == name)
            .ok_or_else(|| format!("the stats CSV has no {name} column"))
    };
    let (px, sv, st, qc, sc) = (
        col("pxname")?,
        col("svname")?,
        col("status")?,
        col("qcur")?,
        col("scur")?,
    );
    let mut rows = Vec::new();
    for line in lines.filter(|l| !l.starts_with('#')) {
        let f = split(line);
        let get = |i: usize| f.get(i).map(String::as_str).unwrap_or("");
        let num = |i: usize| get(i).trim().parse::<u64>().unwrap_or(0);
        rows.push(Row {
            pxname: get(px).to_owned(),
            svname: get(sv).to_owned(),
            status: get(st).to_owned(),
            qcur: num(qc),
            scur: num(sc),
        });
    }
    Ok(rows)
}

/// The server rows of `backend`.
pub fn servers<'a>(rows: &'a [Row], backend: &str) -> Vec<&'a Row> {
    rows.iter()
        .filter(|r| r.pxname == backend && r.svname != "BACKEND" && r.svname != "FRONTEND")
        .collect()
}

fn sanitise(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The task's first host port.
pub fn task_port(task: &Value) -> Option<u64> {
    task.get("ports")?.as_array()?.first()?.as_u64()
}

/// The server row of `task` among `servers`: marathon-lb names servers
/// `<ip>_<port>` or `<host>_<ip>_<port>` (sanitised), so the name starts
/// with the host or the task IP and ends with the port.
pub fn task_row<'a>(servers: &[&'a Row], task: &Value) -> Option<&'a Row> {
    let port = task_port(task)?;
    let mut prefixes = Vec::new();
    if let Some(host) = task.get("host").and_then(Value::as_str) {
        prefixes.push(sanitise(host));
    }
    for ip in task
        .get("ipAddresses")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|a| a.get("ipAddress")?.as_str())
    {
        prefixes.push(sanitise(ip));
    }
    let suffix = format!("_{port}");
    servers.iter().copied().find(|r| {
        r.svname.ends_with(&suffix)
            && prefixes.iter().any(|p| {
                r.svname == format!("{p}{suffix}") || r.svname.starts_with(&format!("{p}_"))
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// HAProxy 1.8-style CSV (as marathon-lb's tests/haproxy_stats.csv) and
    /// HAProxy 2.6's (more columns, a trailing comma, quoted text).
    const OLD: &str = "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,\n\
stats,FRONTEND,,,1,1,2000,1,0,0,0,0,0,,,,,OPEN,,,,\n\
nginx_10000,10_0_6_25_16916,0,0,0,0,,0,0,0,,0,,0,0,0,0,MAINT,1,1,0,\n\
nginx_10000,10_0_6_25_31184,0,0,0,1,,1,0,0,,0,,0,0,0,0,UP,1,1,0,\n\
nginx_10000,10_0_6_25_23336,0,0,2,2,,2,0,0,,0,,0,0,0,0,MAINT,1,1,0,\n\
nginx_10000,BACKEND,0,0,2,2,200,3,0,0,0,0,,0,0,0,0,UP,3,3,0,\n";

    #[test]
    fn reads_columns_by_name() {
        let rows = parse(OLD).unwrap();
        let s = servers(&rows, "nginx_10000");
        assert_eq!(s.len(), 3);
        assert!(s[0].is_drained());
        assert!(s[1].is_up() && !s[1].is_maint());
        assert!(s[2].is_maint() && !s[2].is_drained());
    }

    #[test]
    fn reads_haproxy_2_6_csv() {
        // Header of HAProxy 2.6 (`show stat` typed fields, 100+ columns);
        // the row is shorter than the header and has a quoted comma.
        let csv = "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,req_rate,req_rate_max,req_tot,cli_abrt,srv_abrt,comp_in,comp_out,comp_byp,comp_rsp,lastsess,last_chk,last_agt,qtime,ctime,rtime,ttime,agent_status,agent_code,agent_duration,check_desc,agent_desc,check_rise,check_fall,check_health,agent_rise,agent_fall,agent_health,addr,cookie,mode,algo,conn_rate,conn_rate_max,conn_tot,intercepted,dcon,dses,wrew,connect,reuse,cache_lookups,cache_hits,srv_icur,src_ilim,qtime_max,ctime_max,rtime_max,ttime_max,eint,idle_conn_cur,safe_conn_cur,used_conn_cur,need_conn_est,uweight,agg_server_status,agg_server_check_status,agg_check_status,-,ssl_sess,ssl_reused_sess,ssl_failed_handshake,h2_headers_rcvd,\n\
g_10000,127_0_0_1_31001,0,0,0,1,,5,0,0,,0,,0,0,0,0,MAINT,1,1,0,0,0,3,0,,1,3,1,,5,,2,0,,1,L7OK,200,1,0,5,0,0,0,0,,,,5,0,0,,,,,1,\"OK, fine\",,0,0,0,1,\n";
        let rows = parse(csv).unwrap();
        let s = servers(&rows, "g_10000");
        assert_eq!(s.len(), 1);
        assert!(s[0].is_drained());
    }

    #[test]
    fn garbage_is_an_error_naming_the_problem() {
        assert!(parse("").is_err());
        assert!(
            parse("<html>")
                .unwrap_err()
                .contains("not a HAProxy stats CSV")
        );
        assert!(parse("# pxname,svname\n").unwrap_err().contains("status"));
    }

    #[test]
    fn finds_a_task_by_server_name() {
        let rows = parse(OLD).unwrap();
        let s = servers(&rows, "nginx_10000");
        let task = json!({"host": "10.0.6.25", "ports": [31184]});
        assert_eq!(task_row(&s, &task).unwrap().svname, "10_0_6_25_31184");
        let task = json!({"host": "agent1", "ipAddresses": [{"ipAddress": "10.0.6.25"}], "ports": [16916]});
        assert_eq!(task_row(&s, &task).unwrap().svname, "10_0_6_25_16916");
        assert!(task_row(&s, &json!({"host": "10.0.6.25", "ports": [1]})).is_none());
    }
}
