// Phoenix: Proxmox VE guests as code. The stack's selection (phoenix:guests) is its desired state: every selected guest
// and its dependencies are built from guests/*.yaml; a guest dropped from the selection is destroyed by `pulumi up`.
import { program } from "./components/program";

export = program();
