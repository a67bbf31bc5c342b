import sys

if sys.argv[1:2] == ["operator"]:
    from simulators.operator import main as operator_main

    sys.exit(operator_main(sys.argv[2:]))

from simulators.cli import main

sys.exit(main())
