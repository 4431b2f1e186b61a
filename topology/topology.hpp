// topology/: placement of each local rank on CPUs and NUMA memory (hwloc). See issue 5.
#pragma once
